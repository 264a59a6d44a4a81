//! Direct reads: the rest of a large data frame's payload read from the
//! transport straight into the message buffer (one copy, the kernel's),
//! bounded by what arrived, never by what the peer declared.

use super::{done, Incoming, Out, PieceAt};
use crate::frame::ProtocolError;
use crate::protocol::assembler::Sink;
use crate::protocol::Received;

impl Incoming {
    /// Space to read the current data frame's payload into directly, when at
    /// least `min` payload bytes of it are still to come; `None` otherwise
    /// (and always for a message an extension decodes).
    ///
    /// For large messages this saves a copy: a driver reads from the socket
    /// straight into the message buffer instead of into its read buffer and
    /// from there into the message. Fill a prefix of the slice, then call
    /// [`payload_filled`](Incoming::payload_filled) with how many bytes were
    /// written. Nothing else may be received in between (a frame's payload
    /// is contiguous on the wire).
    ///
    /// The slice never extends past the frame's declared end, and the buffer
    /// grows at most by `max(64 KiB, bytes of the message already here)` per
    /// call (for a streamed message, by twice what the last read delivered,
    /// up to 256 KiB), so a peer that declares a huge length and sends
    /// nothing costs 64 KiB (128 KiB streamed), not its claim (RFC 6455 §10.4).
    pub fn payload_space(&mut self, min: usize) -> Option<&mut [u8]> {
        self.discard_unfilled();
        if self.end_pending || self.piece_pending {
            return None;
        }
        if !self.kept {
            // A streamed message's last piece was handed out: make room.
            self.assembler.clear_piece();
        }
        self.filled = None;
        if !self.direct_ok(min) {
            // No read to add a kept piece to: it is handed out next.
            self.hand_out_kept();
            return None;
        }
        let step = self.direct_step();
        let (start, space) = self.assembler.grow_for_direct(step)?;
        self.direct = Some(start);
        Some(space)
    }

    /// Whether payload may be read straight into the message now: a data
    /// frame of an untransformed message with at least `min` bytes (and at
    /// least one) still to come.
    fn direct_ok(&self, min: usize) -> bool {
        self.failed.is_none()
            && !self.close_received
            && self.sink == Sink::Message
            && self
                .decoder
                .frame()
                .is_some_and(|f| !f.opcode.is_control() && f.remaining >= min.max(1) as u64)
    }

    /// How much `payload_space` offers.
    fn direct_step(&self) -> usize {
        let remaining = self.decoder.frame().map_or(0, |f| f.remaining);
        let have = self.assembler.buffered();
        // Each call zero-fills the slice it hands out (safe code cannot lend
        // uninitialised memory), so offer what the reads are delivering, not
        // the whole frame: twice the last read, at least 16 KiB, at most
        // max(64 KiB, what is here already). A streamed message holds only
        // its latest piece, so it may grow to STREAM_STEP as reads allow:
        // fewer, larger pieces (and echoed fragments) per megabyte.
        let cap = if self.assembler.streaming() {
            STREAM_STEP
        } else {
            have.max(DIRECT_STEP)
        };
        let step = (2 * self.last_direct).max(DIRECT_READ_MIN).min(cap);
        remaining.min(step as u64) as usize
    }

    /// Keeps the [`PieceAt::Data`] that [`receive_piece`](Incoming::receive_piece)
    /// just returned instead of handing it out, when at least `min` bytes
    /// of its frame are still to come and can be read straight in: the
    /// next [`payload_space`](Incoming::payload_space) read is added to it,
    /// and [`filled_piece`](Incoming::filled_piece) reports both as one
    /// piece. Returns whether it kept it (if not, hand the piece out).
    ///
    /// A driver that has just used up its read buffer in the middle of a
    /// large frame calls this before it reads again: what came with the
    /// frame's header and the rest of the frame then make one piece, not a
    /// small one and a large one (so one echoed or relayed frame, one write,
    /// instead of two). The kept bytes wait for that read, which the
    /// frame's sender has already committed to. Anything other than
    /// `payload_space` next (or an unfilled slice) hands the kept piece out
    /// first, as if it had not been kept.
    pub fn keep_piece(&mut self, min: usize) -> bool {
        let keep = self.assembler.streaming()
            && !self.assembler.piece().is_empty()
            && !self.end_pending
            && !self.piece_pending
            && self.direct.is_none()
            && self.direct_ok(min);
        self.kept = keep;
        keep
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
        // A kept piece and these bytes are one piece now.
        self.kept = false;
        let result = self.payload_filled_inner(start, n);
        self.sticky(result)
    }

    /// The latest piece of a streamed message ([`PieceAt::Data`]).
    pub(crate) fn current_piece(&self) -> &[u8] {
        self.assembler.piece()
    }

    /// For a streamed message (see [`receive_piece`](Incoming::receive_piece)):
    /// what the last [`payload_filled`](Incoming::payload_filled) completed,
    /// a [`PieceAt::Data`] (then, if the message ended with it, a
    /// [`PieceAt::End`] from the next `receive_piece`) or a [`PieceAt::End`].
    pub fn filled_piece(&mut self) -> Option<PieceAt> {
        self.filled.take()
    }

    fn payload_filled_inner(&mut self, start: usize, n: usize) -> Result<Received, ProtocolError> {
        if self.decoder.frame().is_none() {
            return Ok(done(0));
        }
        self.last_direct = self.assembler.truncate_direct(start, n);
        let finished = self.decoder.payload(self.assembler.direct_slice(start));
        self.assembler.take(Sink::Message, start)?;
        let out = self.after_payload(finished)?;
        self.filled = match out {
            Some(Out::Piece) => Some(PieceAt::Data),
            Some(Out::End) => Some(PieceAt::End),
            _ => None,
        };
        let message = match out {
            Some(Out::Message(message)) => Some(message),
            _ => None,
        };
        Ok(Received {
            consumed: 0,
            message,
        })
    }

    /// Drops the zeroed tail a [`payload_space`](Incoming::payload_space)
    /// left that was never filled.
    pub(super) fn discard_unfilled(&mut self) {
        if let Some(start) = self.direct.take() {
            self.assembler.truncate_direct(start, 0);
            self.hand_out_kept();
        }
    }

    /// A kept piece whose read did not come (or was not asked for) is
    /// handed out as it is, next.
    pub(super) fn hand_out_kept(&mut self) {
        if std::mem::take(&mut self.kept) {
            self.piece_pending = true;
        }
    }
}

/// The most [`Incoming::payload_space`] grows a message by when little of it
/// is here yet: a declared length alone costs at most this.
pub(super) const DIRECT_STEP: usize = 64 * 1024;
/// The least it offers.
const DIRECT_READ_MIN: usize = 16 * 1024;
/// The most it offers for a piece of a streamed message (reached only by
/// doubling from what reads delivered).
const STREAM_STEP: usize = 256 * 1024;
