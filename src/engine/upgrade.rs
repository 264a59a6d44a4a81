//! The upgrade decision chain both engines run on a complete request head:
//! the HTTP handler for plain requests, `check_upgrade`, then the handshake
//! itself (origin, subprotocol, extensions), each user callback guarded.

use super::call_user;
use super::config::ServerConfig;
use crate::handshake::http::Request;
use crate::handshake::server::{accept, check_http, response_for, Accepted, Rejection};

/// What a server does with a request head, on either engine: plain HTTP
/// that passes [`check_http`] goes to the HTTP handler, then
/// `check_upgrade` may refuse the upgrade, then the handshake is accepted
/// or refused. `Err` holds the HTTP response to send before closing: for
/// `HEAD`, its head only ([`response_for`]).
///
/// Every user callback on the way (the HTTP handler, `check_upgrade`, the
/// origin and subprotocol choices in [`AcceptOptions`](crate::handshake::server::AcceptOptions))
/// runs under `catch_unwind`: a panic in one costs only its request, which
/// is answered `500 Internal Server Error`, never the thread (on the poll
/// engine, a worker and every connection on it).
pub(crate) fn answer(request: &Request, config: &ServerConfig) -> Result<Accepted, Vec<u8>> {
    call_user(|| decide(request, config))
        .unwrap_or_else(|| Err(Rejection::new(500).to_bytes()))
        .map_err(|response| response_for(request, response))
}

fn decide(request: &Request, config: &ServerConfig) -> Result<Accepted, Vec<u8>> {
    if let Some(http) = &config.http {
        if !request.headers.has_token("upgrade", "websocket") {
            check_http(request).map_err(|rejection| rejection.to_bytes())?;
            return Err(http(request).to_bytes());
        }
    }
    if let Some(check) = &config.upgrade_check {
        if let Some(response) = check(request) {
            return Err(response.to_bytes());
        }
    }
    accept(request, &config.accept).map_err(|rejection| rejection.to_bytes())
}
