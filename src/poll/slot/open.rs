//! The open phase: reads fed to the core's [`Connection`] (frames unmasked
//! in place in the worker's read buffer, a large frame's payload read
//! straight into its message), the handler called through one function,
//! output written, backpressure kept.

use super::{Env, Slot, Turn, User};
use crate::engine::call_user;
use crate::error::Error;
use crate::poll::sender::Sender;
use crate::poll::{Conn, Handler};
use crate::protocol::{Connection, MessageRef, Outgoing, State};
use mio::net::TcpStream;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::time::Instant;

/// Reads of one connection per readiness event before the others get a
/// turn (a peer that streams fast must not hold up its worker).
const READS_PER_TURN: usize = 16;
/// A data frame with at least this much payload still to come is read
/// straight into its message (one copy, the kernel's, instead of two).
const DIRECT_READ: usize = 16 * 1024;

impl<St> Slot<St> {
    /// Reads and answers until the socket is drained, the output is over
    /// budget, or this connection's turn is up.
    pub(super) fn run_open<H: Handler<State = St>>(&mut self, env: &mut Env<'_, H>) -> Turn {
        let cap = env.rbuf.len();
        for _ in 0..READS_PER_TURN {
            let panicked = self.user.as_ref().is_some_and(|u| u.panicked);
            let Some(conn) = self.life.connection_mut() else {
                return Turn::Idle;
            };
            if panicked || !matches!(conn.state(), State::Open | State::CloseSent) {
                self.write_out();
                return Turn::Idle;
            }
            if conn.data_to_send().len() > env.max_pending {
                self.write_out();
                let pending = self.life.data_to_send().len();
                if pending > env.max_pending {
                    // Backpressure: the peer reads our output before we read
                    // more of its input; the socket's writable edge resumes us.
                    return Turn::Idle;
                }
                continue;
            }
            let read = if let Some(space) = conn.payload_space(DIRECT_READ) {
                // The rest of a large frame: straight into the message.
                let read = self.stream.read(space);
                let n = *read.as_ref().unwrap_or(&0);
                self.filled(env.handler, n);
                read.map(|n| (n, true))
            } else {
                let read = self.stream.read(env.rbuf);
                if let Ok(n) = read {
                    self.process(env.handler, &mut env.rbuf[..n]);
                }
                read.map(|n| (n, false))
            };
            match read {
                Ok((0, _)) => {
                    self.on_eof();
                    return Turn::Idle;
                }
                // A short read drained the socket: data arriving later
                // raises a new readiness edge.
                Ok((n, false)) if n < cap && !self.read_closed => {
                    self.write_out();
                    return Turn::Idle;
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.write_out();
                    return Turn::Idle;
                }
                Err(e) => {
                    self.end_with(Error::Io(e));
                    self.life.abort();
                    return Turn::Idle;
                }
            }
        }
        // Turn over with input perhaps still waiting: come back.
        self.write_out();
        Turn::Again
    }

    /// The peer closed its side of TCP: what that means is the core's
    /// (a clean end after a close frame, an error before one).
    fn on_eof(&mut self) {
        if let Some(end) = self.life.receive_eof(Instant::now()) {
            self.end_with(end);
        }
    }

    /// Feeds bytes read from the socket to the connection, calling the
    /// handler for each data message completed, borrowed from `data`.
    pub(super) fn process<H: Handler<State = St>>(&mut self, handler: &H, data: &mut [u8]) {
        let Slot {
            stream,
            sender,
            peer,
            life,
            user,
            ..
        } = self;
        let (Some(conn), Some(user)) = (life.connection_mut(), user.as_mut()) else {
            return;
        };
        let mut at = 0;
        while !user.panicked && at < data.len() && is_open(conn) {
            let received = conn.receive_with(&mut data[at..], |message, out| {
                if message.is_data() {
                    let io = (&mut *stream, &*sender, *peer);
                    call_on_message(handler, user, out, io, message);
                }
            });
            match received {
                Ok((0, None)) => break,
                Ok((used, _)) => at += used,
                Err(e) => {
                    // The close frame with the error's code is queued.
                    user.end_with(e);
                    break;
                }
            }
        }
    }

    /// Takes in `n` bytes read straight into a large frame's payload; a
    /// message they complete goes to the handler.
    fn filled<H: Handler<State = St>>(&mut self, handler: &H, n: usize) {
        let Slot {
            stream,
            sender,
            peer,
            life,
            user,
            ..
        } = self;
        let (Some(conn), Some(user)) = (life.connection_mut(), user.as_mut()) else {
            return;
        };
        let filled = conn.payload_filled_with(n, |message, out| {
            call_on_message(handler, user, out, (&mut *stream, &*sender, *peer), message);
        });
        if let Err(e) = filled {
            user.end_with(e);
        }
    }
}

fn is_open(conn: &Connection) -> bool {
    matches!(conn.state(), State::Open | State::CloseSent)
}

/// The one call of a handler's `on_message`, for every path a message
/// takes (borrowed from the read buffer, or read straight into its own
/// buffer when large): the same [`Conn`] data and the same guard. A
/// panicking handler costs its connection, not the worker and every other
/// connection on it.
fn call_on_message<H: Handler>(
    handler: &H,
    user: &mut User<H::State>,
    out: &mut Outgoing,
    (stream, sender, peer): (&mut TcpStream, &Sender, SocketAddr),
    message: MessageRef<'_>,
) {
    let User {
        state,
        end,
        panicked,
        subprotocol,
        ..
    } = user;
    let (Some(state), false) = (state.as_mut(), *panicked) else {
        return;
    };
    let mut conn = Conn {
        out,
        stream,
        sender,
        peer,
        subprotocol: subprotocol.as_deref(),
    };
    if call_user(|| handler.on_message(state, &mut conn, message)).is_none() {
        *panicked = true;
        end.get_or_insert_with(|| Error::Io(io::Error::other("the handler panicked")));
    }
}
