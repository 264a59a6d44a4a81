//! One connection's thread: the opening handshake through the core's
//! [`ServerHandshake`] (read under its deadline, answered by the shared
//! decision chain), then a [`WebSocket`] around the open connection for the
//! handler, the one place this engine calls the user's code.

use super::ServerWebSocket;
use crate::engine::call_user;
use crate::engine::config::ServerConfig;
use crate::engine::response::LATER_TIMEOUT;
use crate::engine::upgrade::answer;
use crate::error::{Error, Result};
use crate::handshake::http::Request;
use crate::protocol::ServerHandshake;
use crate::transport::{read_head, ReadError, Stream, Transport};
use crate::websocket::WebSocket;
use std::io::{self, Write};
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
    let mut handshake = ServerHandshake::new(
        config.http_limits.clone(),
        config.handshake_timeout,
        Instant::now(),
    );
    let deadline = handshake.deadline();
    // TLS first (issue 12): its handshake counts against the same deadline.
    #[cfg(feature = "tls")]
    if let Some(tls) = &config.tls {
        stream = match stream.accept_tls(tls, deadline) {
            Ok(stream) => stream,
            Err(_) => return,
        };
    }
    let request = match read_head(&mut stream, &mut handshake, deadline) {
        Ok(request) => request,
        Err(error) => {
            let response = match error {
                ReadError::Head(e) => e.response(),
                ReadError::Timeout => ServerHandshake::timeout_response(),
                ReadError::Eof | ReadError::Io(_) => return,
            };
            let _ = stream.write_all(&response);
            return;
        }
    };
    let accepted = match answer(&request, config) {
        Ok(Ok(accepted)) => accepted,
        // This thread serves this request alone: it may wait for the answer.
        Ok(Err(later)) => {
            let response = later.pending.wait(LATER_TIMEOUT, later.fallback.clone());
            let _ = stream.write_all(&later.finish(response));
            return;
        }
        Err(response) => {
            let _ = stream.write_all(&response);
            return;
        }
    };
    let ws_config = config.websocket_config();
    let (connection, leftover) = handshake.accept(&accepted, &ws_config, Instant::now());
    // Always a read timeout: it is the driver's clock (keepalive, idle and
    // close timeouts), so a handler that closes and then reads never waits
    // forever for a peer that does not answer.
    let tick = ws_config.read_tick();
    let _ = stream.set_read_timeout(Some(tick));
    let mut ws = WebSocket::from_connection(stream, connection, leftover, ws_config);
    ws.set_subprotocol(accepted.negotiated.subprotocol);
    // The 101, before the handler runs.
    if ws.flush().is_err() {
        return;
    }
    ws.set_going_away(going_away);
    ws.set_timeouts_are_ticks(tick);
    // The handler takes the request; keep a copy only for a hook that wants it.
    let copy = config.on_error.as_ref().map(|_| request.clone());
    // A panicking handler costs its connection (closed by the registry's
    // guard), and the hook hears of it like any other failure.
    let ended = call_user(|| handler(ws, request))
        .unwrap_or_else(|| Err(Error::Io(io::Error::other("the handler panicked"))));
    match (ended, &config.on_error, copy) {
        (Err(e), Some(hook), Some(request)) if !matches!(e, Error::ConnectionClosed) => {
            let _ = call_user(|| hook(&e, &request));
        }
        _ => {}
    }
}
