//! The handshake phase: the request read into the core's
//! [`ServerHandshake`](crate::protocol::ServerHandshake) as it arrives (its
//! limits, its deadline and its error statuses are the core's), the shared
//! decision chain, then `on_open`.

use super::{Env, Slot, Turn, User};
use crate::engine::call_user;
use crate::engine::response::LATER_TIMEOUT;
use crate::engine::upgrade::answer;
use crate::handshake::http::Request;
use crate::poll::inbox::Command;
use crate::poll::{Conn, Handler};
use std::io::{self, Read};
use std::time::Instant;

impl<St> Slot<St> {
    /// Reads the request until it is complete, the socket is drained, or
    /// the request is refused.
    pub(super) fn read_request<H: Handler<State = St>>(&mut self, env: &mut Env<'_, H>) -> Turn {
        loop {
            let Some(handshake) = self.life.handshake_mut() else {
                return Turn::Idle;
            };
            let read = self.stream.read(handshake.space());
            let now = Instant::now();
            match read {
                Ok(0) => {
                    self.life.receive_eof(now);
                    return Turn::Idle;
                }
                Ok(n) => match handshake.filled(n) {
                    Ok(Some(request)) => return self.upgrade(env, request),
                    Ok(None) => {}
                    Err(e) => {
                        self.life.head_failed(&e, now);
                        return Turn::Idle;
                    }
                },
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Turn::Idle,
                Err(_) => {
                    self.life.abort();
                    return Turn::Idle;
                }
            }
        }
    }

    /// A complete request: answered by the decision chain (the same as the
    /// threaded server's), upgraded, and handed to `on_open`.
    fn upgrade<H: Handler<State = St>>(&mut self, env: &mut Env<'_, H>, request: Request) -> Turn {
        let now = Instant::now();
        let accepted = match answer(&request, env.config) {
            Ok(Ok(accepted)) => accepted,
            Ok(Err(deferred)) => {
                // The answer comes from another thread: the worker goes on,
                // and its inbox is told when it is there.
                let sender = self.sender.clone();
                let wake = Box::new(move || {
                    let (slot, id) = (sender.slot, sender.id);
                    let _ = sender.inbox.push(Command::Answered { slot, id });
                });
                match deferred.pending.take_or_notify(wake) {
                    Some(response) => self.life.refuse(deferred.finish(response), now),
                    None => {
                        let fallback = deferred.fallback.clone();
                        self.life.await_answer(LATER_TIMEOUT, fallback, now);
                        self.later = Some(Box::new(deferred));
                    }
                }
                return Turn::Idle;
            }
            Err(response) => {
                self.life.refuse(response, now);
                return Turn::Idle;
            }
        };
        let mut leftover = self.life.accept(&accepted, env.ws_config, now);
        let subprotocol = accepted.negotiated.subprotocol;
        let Some(conn) = self.life.connection_mut() else {
            return Turn::Idle;
        };
        // The 101 is queued first; whatever on_open sends goes out after it.
        let opened = call_user(|| {
            env.handler.on_open(
                &mut Conn {
                    out: conn.outgoing_mut(),
                    stream: &mut self.stream,
                    sender: &self.sender,
                    peer: self.peer,
                    subprotocol: subprotocol.as_deref(),
                },
                &request,
            )
        });
        let Some(state) = opened else {
            // The handler panicked: no state, so no on_close; the peer
            // gets no 101, only the end of the connection.
            conn.take_data_to_send();
            self.life.close_transport(now);
            return Turn::Idle;
        };
        self.user = Some(Box::new(User {
            state: Some(state),
            end: None,
            panicked: false,
            subprotocol,
            request: env.config.on_error.as_ref().map(|_| request),
        }));
        // The client's first frames may have come with its request.
        if !leftover.is_empty() {
            self.process(env.handler, &mut leftover);
        }
        self.run_open(env)
    }
}
