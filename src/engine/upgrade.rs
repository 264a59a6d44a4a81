//! The upgrade decision chain both engines run on a complete request head:
//! the HTTP handler for plain requests, `check_upgrade`, then the handshake
//! itself (origin, subprotocol, extensions), each user callback guarded.

use super::call_user;
use super::config::ServerConfig;
use super::response::Pending;
use crate::handshake::http::Request;
use crate::handshake::server::{accept, check_http, head_only, response_for, Accepted, Rejection};
use std::sync::Arc;

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
///
/// `Ok(Err(_))` is an answer the HTTP handler gives later from another
/// thread ([`HttpResponse::later`](super::response::HttpResponse::later)),
/// with what to send if it does not come in time.
pub(crate) fn answer(
    request: &Request,
    config: &ServerConfig,
) -> Result<Result<Accepted, Deferred>, Vec<u8>> {
    let head_only = request.is_head();
    match call_user(|| decide(request, config)) {
        None => Err(response_for(request, Rejection::new(500).to_bytes())),
        Some(Ok(Ok(accepted))) => Ok(Ok(accepted)),
        Some(Ok(Err(mut deferred))) => {
            deferred.head_only = head_only;
            let fallback = std::mem::take(&mut deferred.fallback);
            deferred.fallback = deferred.finish(fallback);
            Ok(Err(deferred))
        }
        Some(Err(response)) => Err(response_for(request, response)),
    }
}

fn decide(request: &Request, config: &ServerConfig) -> Result<Result<Accepted, Deferred>, Vec<u8>> {
    if let Some(http) = &config.http {
        if !request.headers.has_token("upgrade", "websocket") {
            check_http(request).map_err(|rejection| rejection.to_bytes())?;
            let response = http(request);
            return match &response.later {
                Some(later) => Ok(Err(Deferred {
                    pending: Arc::clone(&later.0),
                    fallback: response.to_bytes(),
                    head_only: false,
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
    pub(crate) pending: Arc<Pending>,
    /// The placeholder's `504`, for an answer that does not come in time.
    pub(crate) fallback: Vec<u8>,
    /// The request was `HEAD`: the answer goes out as its head only.
    head_only: bool,
}

impl Deferred {
    /// The bytes to send for the answer `response` (its head only for HEAD).
    pub(crate) fn finish(&self, response: Vec<u8>) -> Vec<u8> {
        if self.head_only {
            head_only(response)
        } else {
            response
        }
    }
}
