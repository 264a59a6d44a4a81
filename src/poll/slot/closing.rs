//! The closing phase: the I/O of the core's lingering close. Our last bytes
//! go out, then FIN when the lifecycle says so, then the peer's input is
//! read and dropped until the lifecycle is done (the peer closed, went
//! quiet, or the close timeout passed: its rule, its numbers).

use super::{Env, Slot};
use crate::poll::Handler;
use crate::protocol::Phase;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::time::Instant;

impl<St> Slot<St> {
    pub(super) fn run_closing<H: Handler<State = St>>(&mut self, env: &mut Env<'_, H>) {
        while !self.life.data_to_send().is_empty() {
            match self.stream.write(self.life.data_to_send()) {
                Ok(0) => return self.life.abort(),
                Ok(n) => self.life.advance(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => return self.life.abort(),
            }
        }
        if self.life.fin_due() {
            let _ = self.stream.shutdown(Shutdown::Write);
            self.life.fin_sent(Instant::now());
        }
        while self.life.phase() == Phase::Closing {
            match self.stream.read(env.rbuf) {
                Ok(0) => {
                    self.life.receive_eof(Instant::now());
                    return;
                }
                Ok(_) => self.life.drained(Instant::now()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => return self.life.abort(),
            }
        }
    }
}
