//! What both server engines share (the thread-per-connection
//! [`Server`](crate::Server) and the poll engine): their configuration, the
//! decision chain a request head goes through, the accept loop's pieces
//! (wake-up, join, back-off, the 503 rejecter, the blocking lingering
//! close), and the one way user code is called.
//!
//! | file | concern |
//! | --- | --- |
//! | `config.rs` | [`ServerConfig`](crate::ServerConfig) |
//! | `upgrade.rs` | HTTP handler → `check_upgrade` → handshake, each guarded |
//! | `response.rs` | [`HttpResponse`](crate::HttpResponse), and one given later from another thread ([`Responder`](crate::server::Responder)) |
//! | `accept.rs` | accept-loop wake and join, back-off, rejecter, blocking linger |

pub(crate) mod accept;
pub(crate) mod config;
pub(crate) mod response;
pub(crate) mod upgrade;

use std::panic::{catch_unwind, AssertUnwindSafe};

/// Calls user code (a handler, a hook, a callback): a panic in it is caught
/// and costs what the caller decides (a 500, the connection), never the
/// thread or the other connections an engine serves from it. `None` when it
/// panicked. Every call into user code on both engines goes through here.
pub(crate) fn call_user<R>(f: impl FnOnce() -> R) -> Option<R> {
    catch_unwind(AssertUnwindSafe(f)).ok()
}
