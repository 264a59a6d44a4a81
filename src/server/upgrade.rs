//! One connection's way in: read the request head under a deadline, answer
//! plain HTTP or refuse, accept the upgrade, and hand a [`WebSocket`] to the
//! handler.

use super::{ServerConfig, ServerWebSocket};
use crate::frame::Role;
use crate::handshake::http::{parse_request, HttpError, Request};
use crate::handshake::server::{accept, Accepted, Rejection};
use crate::transport::{read_head, HeadError, Stream, Transport};
use crate::websocket::WebSocket;
use crate::{Error, Result};
use std::io::Write;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

/// What a server does with a request head, on either engine: plain HTTP
/// goes to the HTTP handler, then `check_upgrade` may refuse the upgrade,
/// then the handshake is accepted or refused. `Err` holds the HTTP response
/// to send before closing; `Ok(Err(_))` an answer the handler gives later
/// ([`HttpResponse::later`](super::HttpResponse::later)), and what to send
/// if it does not come in time.
pub(crate) fn answer(
    request: &Request,
    config: &ServerConfig,
) -> Result<Result<Accepted, Deferred>, Vec<u8>> {
    if let Some(http) = &config.http {
        if !request.headers.has_token("upgrade", "websocket") {
            let response = http(request);
            return match &response.later {
                Some(later) => Ok(Err(Deferred {
                    pending: Arc::clone(&later.0),
                    fallback: response.to_bytes(),
                })),
                None => Err(response.to_bytes()),
            };
        }
    }
    if let Some(check) = &config.upgrade_check {
        if let Some(response) = check(request) {
            return Err(response.to_bytes());
        }
    }
    accept(request, &config.accept)
        .map(Ok)
        .map_err(|rejection| rejection.to_bytes())
}

/// An HTTP answer that another thread gives later.
pub(crate) struct Deferred {
    pub(crate) pending: Arc<super::later::Pending>,
    /// The placeholder's `504`, for an answer that does not come in time.
    pub(crate) fallback: Vec<u8>,
}

/// The response to a request head that could not be read.
pub(crate) fn head_error_response(error: &HeadError<HttpError>) -> Option<Vec<u8>> {
    Some(match error {
        HeadError::Parse(e) => Rejection::from_http_error(e).to_bytes(),
        HeadError::TooLarge => Rejection::new(431).to_bytes(),
        HeadError::Timeout => Rejection::new(408).to_bytes(),
        HeadError::Eof | HeadError::Io(_) => return None,
    })
}

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
        Err(error) => {
            if let Some(response) = head_error_response(&error) {
                let _ = stream.write_all(&response);
            }
            return;
        }
    };
    let accepted = match answer(&request, config) {
        Ok(Ok(accepted)) => accepted,
        // This thread serves this request alone: it may wait for the answer.
        Ok(Err(later)) => {
            let response = later.pending.wait(super::LATER_TIMEOUT, later.fallback);
            let _ = stream.write_all(&response);
            return;
        }
        Err(response) => {
            let _ = stream.write_all(&response);
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
