//! `wsecho --engine poll`: the same echo on the poll engine (feature `mio`).

use rfc6455::handshake::http::Request;
use rfc6455::poll::{Conn, Handler, PollHandle, PollServer};
use rfc6455::protocol::MessageRef;
use rfc6455::{escape, Error, ServerConfig};
use std::time::Instant;

/// Echoes every text and binary message, from the read buffer it arrived
/// in, and logs a line per connection like the threaded engine.
struct Echo {
    quiet: bool,
}

struct Session {
    peer: String,
    start: Instant,
    messages: u64,
}

impl Handler for Echo {
    type State = Session;

    fn on_open(&self, conn: &mut Conn<'_>, _request: &Request) -> Session {
        Session {
            peer: conn.peer_addr().to_string(),
            start: Instant::now(),
            messages: 0,
        }
    }

    fn on_message(&self, session: &mut Session, conn: &mut Conn<'_>, message: MessageRef<'_>) {
        session.messages += 1;
        // Fails only after our close frame (the server is going away).
        let _ = conn.send(message);
    }

    fn on_close(&self, session: Session, end: &Error) {
        if self.quiet {
            return;
        }
        let end = match end {
            Error::ConnectionClosed => "closed".to_owned(),
            Error::Protocol(p) => format!("failed: {p} (sent close {})", p.close_code()),
            // Errors may quote what the peer sent.
            other => escape::for_display(&other.to_string()).to_string(),
        };
        let s = if session.messages == 1 { "" } else { "s" };
        eprintln!(
            "wsecho: {}: {:.3}s, {} message{s}, {end}",
            session.peer,
            session.start.elapsed().as_secs_f64(),
            session.messages
        );
    }
}

/// Binds and serves until shutdown; `on_bound` gets the handle (for the
/// signal handler) once listening.
pub fn serve(
    listen: &str,
    config: ServerConfig,
    workers: Option<usize>,
    quiet: bool,
    on_bound: impl FnOnce(&PollServer, PollHandle),
) -> Result<(), String> {
    let mut server = PollServer::bind(listen, config)
        .map_err(|e| format!("cannot listen on {listen}: {e}{}", super::bind_hint(&e)))?;
    if let Some(n) = workers {
        server = server.workers(n);
    }
    on_bound(&server, server.handle());
    server.serve(Echo { quiet }).map_err(|e| e.to_string())
}
