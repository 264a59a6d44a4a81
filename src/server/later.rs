//! An HTTP answer given later, from another thread: the handler returns
//! [`HttpResponse::later`]'s placeholder and hands the [`Responder`] to
//! whoever learns the answer (a store's acknowledgement), so that no poll
//! worker waits. The threaded server's connection thread waits for it
//! instead (it has nothing else to do); both give up after
//! [`LATER_TIMEOUT`] with `504 Gateway Timeout`.

use super::HttpResponse;
use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long a server waits for a [`Responder`] before it answers `504`.
pub const LATER_TIMEOUT: Duration = Duration::from_secs(30);

/// Gives the answer to a request whose handler returned
/// [`HttpResponse::later`]. Dropped without [`send`](Responder::send), it
/// answers `500 Internal Server Error`.
pub struct Responder {
    pending: Arc<Pending>,
}

/// The answer, once given, and who to tell.
#[derive(Default)]
pub(crate) struct Pending {
    state: Mutex<State>,
    ready: Condvar,
}

#[derive(Default)]
struct State {
    response: Option<Vec<u8>>,
    /// Told once the answer is there (a poll worker's wake-up).
    notify: Option<Box<dyn FnOnce() + Send>>,
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl HttpResponse {
    /// A response that another thread gives later through the returned
    /// [`Responder`]: return the first from an
    /// [`http_handler`](super::ServerConfig::http_handler), hand the second
    /// to whatever will know the answer. A poll worker goes on serving its
    /// other connections meanwhile.
    ///
    /// ```
    /// use rfc6455::{HttpResponse, ServerConfig};
    ///
    /// let config = ServerConfig::default().http_handler(|_request| {
    ///     let (response, responder) = HttpResponse::later();
    ///     std::thread::spawn(move || responder.send(HttpResponse::new(200, "text/plain", "done\n")));
    ///     response
    /// });
    /// ```
    pub fn later() -> (HttpResponse, Responder) {
        let pending = Arc::new(Pending::default());
        let mut response =
            HttpResponse::new(504, "text/plain; charset=utf-8", "no answer in time\n");
        response.later = Some(Later(Arc::clone(&pending)));
        (response, Responder { pending })
    }
}

impl Responder {
    /// Answers the request with `response`.
    pub fn send(self, response: HttpResponse) {
        self.give(response.to_bytes());
    }

    fn give(&self, bytes: Vec<u8>) {
        let mut state = lock(&self.pending.state);
        if state.response.is_some() {
            return;
        }
        state.response = Some(bytes);
        let notify = state.notify.take();
        drop(state);
        self.pending.ready.notify_all();
        if let Some(notify) = notify {
            notify();
        }
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        let failed = HttpResponse::new(500, "text/plain; charset=utf-8", "no answer\n");
        self.give(failed.to_bytes());
    }
}

impl fmt::Debug for Responder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Responder")
    }
}

impl Pending {
    /// Waits for the answer, up to `timeout` (then the placeholder's 504).
    pub(crate) fn wait(&self, timeout: Duration, fallback: Vec<u8>) -> Vec<u8> {
        let deadline = Instant::now() + timeout;
        let mut state = lock(&self.state);
        loop {
            if let Some(bytes) = state.response.take() {
                return bytes;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return fallback;
            }
            state = self
                .ready
                .wait_timeout(state, left)
                .map_or_else(|p| p.into_inner().0, |(g, _)| g);
        }
    }

    /// The answer if it is there; otherwise `notify` is called once it is.
    // For an event loop (the poll engine); the threaded server waits.
    #[cfg_attr(not(feature = "mio"), allow(dead_code))]
    pub(crate) fn take_or_notify(&self, notify: Box<dyn FnOnce() + Send>) -> Option<Vec<u8>> {
        let mut state = lock(&self.state);
        match state.response.take() {
            Some(bytes) => Some(bytes),
            None => {
                state.notify = Some(notify);
                None
            }
        }
    }

    /// The answer if it is there.
    #[cfg_attr(not(feature = "mio"), allow(dead_code))]
    pub(crate) fn take(&self) -> Option<Vec<u8>> {
        lock(&self.state).response.take()
    }
}

/// The placeholder's link to its [`Responder`] (compared by identity).
#[derive(Clone)]
pub(crate) struct Later(pub(crate) Arc<Pending>);

impl PartialEq for Later {
    fn eq(&self, other: &Later) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Later {}

impl fmt::Debug for Later {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Later")
    }
}
