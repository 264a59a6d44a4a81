//! One connection's way in: read the request head under a deadline, answer
//! plain HTTP or refuse, accept the upgrade, and hand a [`WebSocket`] to the
//! handler.

use super::{ServerConfig, ServerWebSocket};
use crate::frame::Role;
use crate::handshake::http::{parse_request, Request};
use crate::handshake::server::{accept, Rejection};
use crate::transport::{read_head, HeadError, Stream, Transport};
use crate::websocket::WebSocket;
use crate::{Error, Result};
use std::io::Write;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

pub(super) fn serve_connection<F>(
    mut stream: Stream,
    config: &ServerConfig,
    going_away: Arc<AtomicBool>,
    handler: &F,
) where
    F: Fn(ServerWebSocket, Request) -> Result<()>,
{
    // Small frames must not wait for Nagle's algorithm.
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(config.write_timeout);
    let deadline = Instant::now() + config.handshake_timeout;
    // TLS first (issue 12): its handshake counts against the same deadline.
    #[cfg(feature = "tls")]
    if let Some(tls) = &config.tls {
        stream = match stream.accept_tls(tls, deadline) {
            Ok(stream) => stream,
            Err(_) => return,
        };
    }
    let limits = config.http_limits.clone();
    let head = read_head(&mut stream, deadline, limits.max_head, |buf| {
        parse_request(buf, &limits)
    });
    let (request, leftover) = match head {
        Ok(ok) => ok,
        Err(HeadError::Parse(e)) => {
            let _ = stream.write_all(&Rejection::from_http_error(&e).to_bytes());
            return;
        }
        Err(HeadError::TooLarge) => {
            let _ = stream.write_all(&Rejection::new(431).to_bytes());
            return;
        }
        Err(HeadError::Timeout) => {
            let _ = stream.write_all(&Rejection::new(408).to_bytes());
            return;
        }
        Err(HeadError::Eof | HeadError::Io(_)) => return,
    };
    if let Some(http) = &config.http {
        if !request.headers.has_token("upgrade", "websocket") {
            let _ = stream.write_all(&http(&request).to_bytes());
            return;
        }
    }
    if let Some(check) = &config.upgrade_check {
        if let Some(response) = check(&request) {
            let _ = stream.write_all(&response.to_bytes());
            return;
        }
    }
    let accepted = match accept(&request, &config.accept) {
        Ok(a) => a,
        Err(rejection) => {
            let _ = stream.write_all(&rejection.to_bytes());
            return;
        }
    };
    if stream.write_all(&accepted.response).is_err() {
        return;
    }
    let ws_config = config.websocket_config();
    // Always a read timeout: it is the driver's clock (keepalive, idle and
    // close timeouts), so a handler that closes and then reads never waits
    // forever for a peer that does not answer.
    let tick = ws_config.read_tick();
    let _ = stream.set_read_timeout(Some(tick));
    let mut ws = WebSocket::after_handshake(
        stream,
        leftover,
        Role::Server,
        accepted.negotiated,
        ws_config,
    );
    ws.set_going_away(going_away);
    ws.set_timeouts_are_ticks(tick);
    // The handler takes the request; keep a copy only for a hook that wants it.
    let copy = config.on_error.as_ref().map(|_| request.clone());
    match (handler(ws, request), &config.on_error, copy) {
        (Err(e), Some(hook), Some(request)) if !matches!(e, Error::ConnectionClosed) => {
            hook(&e, &request)
        }
        _ => {}
    }
}
