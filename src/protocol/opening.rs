//! The opening handshake (RFC 6455 §4) fed as bytes: [`ServerHandshake`]
//! reads the upgrade request as it arrives and turns an accepted one into a
//! [`Connection`] with the 101 queued; [`ClientHandshake`] sends the request
//! and turns a verified 101 into a [`Connection`]. Both bound the head in
//! bytes ([`HeadReader`]) and in time (their deadline), the same for every
//! driver.

use super::{Connection, WebSocketConfig};
use crate::error::{Error, Result};
use crate::frame::Role;
use crate::handshake::client::{verify_response, ClientRequest};
use crate::handshake::http::{parse_request, parse_response, HttpError, Limits, Request, Response};
use crate::handshake::server::{Accepted, Rejection};
use crate::handshake::{HandshakeError, Negotiated};
use crate::handshake::{HeadError, HeadReader, ReadsHead};
use std::time::{Duration, Instant};

/// The server's side of the opening handshake: the request head read as
/// bytes arrive, within [`Limits`] and a deadline (slowloris guard).
///
/// ```
/// use rfc6455::handshake::{accept, AcceptOptions, Limits};
/// use rfc6455::protocol::{ServerHandshake, WebSocketConfig};
/// use std::time::{Duration, Instant};
///
/// let now = Instant::now();
/// let mut handshake = ServerHandshake::new(Limits::default(), Duration::from_secs(10), now);
/// let wire = b"GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
///     Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
///     Sec-WebSocket-Version: 13\r\n\r\n";
/// let (_, request) = handshake.receive_data(wire).unwrap();
/// let accepted = accept(&request.unwrap(), &AcceptOptions::new()).unwrap();
/// let (conn, leftover) = handshake.accept(&accepted, &WebSocketConfig::default(), now);
/// assert!(conn.data_to_send().starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));
/// assert!(leftover.is_empty());
/// ```
#[derive(Debug)]
pub struct ServerHandshake {
    head: HeadReader,
    deadline: Instant,
}

impl ServerHandshake {
    /// A handshake that must be complete within `timeout` from `now`.
    pub fn new(limits: Limits, timeout: Duration, now: Instant) -> ServerHandshake {
        ServerHandshake {
            head: HeadReader::new(limits),
            deadline: now + timeout,
        }
    }

    /// Space for the next bytes of the request (see [`HeadReader::space`]).
    pub fn space(&mut self) -> &mut [u8] {
        self.head.space()
    }

    /// Takes in `n` bytes written into [`space`](ServerHandshake::space):
    /// the request once it is complete. An error is answered with
    /// [`HeadError::response`] (400, 431, 505…), then the connection closes.
    pub fn filled(&mut self, n: usize) -> Result<Option<Request>, HeadError> {
        self.head.filled(n, parse_request)
    }

    /// Copies in bytes read elsewhere (see [`HeadReader::receive_data`]).
    pub fn receive_data(&mut self, data: &[u8]) -> Result<(usize, Option<Request>), HeadError> {
        self.head.receive_data(data, parse_request)
    }

    /// When the request must be complete.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Whether the request came too late: answer it with
    /// [`timeout_response`](ServerHandshake::timeout_response).
    pub fn is_timed_out(&self, now: Instant) -> bool {
        now >= self.deadline
    }

    /// `408 Request Timeout`, for a request not complete by the deadline.
    pub fn timeout_response() -> Vec<u8> {
        Rejection::new(408).to_bytes()
    }

    /// The upgrade was accepted (by
    /// [`handshake::accept`](crate::handshake::server::accept), after
    /// whatever checks the server makes): the connection, with the 101
    /// queued ahead of anything it sends, extensions and timers installed
    /// ([`Connection::after_handshake`]), and the bytes that came after the
    /// request (the client's first frames).
    pub fn accept(
        mut self,
        accepted: &Accepted,
        config: &WebSocketConfig,
        now: Instant,
    ) -> (Connection, Vec<u8>) {
        let mut conn = Connection::after_handshake(Role::Server, config, &accepted.negotiated, now);
        conn.outgoing_mut().queue_unwritten(&accepted.response);
        (conn, self.head.take_leftover())
    }
}

/// The client's side of the opening handshake: the request to send, then
/// the server's response read as bytes arrive, within [`Limits`] and a
/// deadline, and verified (RFC 6455 §4.2.2).
///
/// ```
/// use rfc6455::handshake::{build_request, Limits, RequestOptions};
/// use rfc6455::protocol::{ClientHandshake, WebSocketConfig};
/// use std::time::{Duration, Instant};
///
/// let request = build_request(&RequestOptions::new("example.com", "/")).unwrap();
/// let answer = format!(
///     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
///      Connection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
///     request.expected_accept()
/// );
/// let now = Instant::now();
/// let mut handshake = ClientHandshake::new(request, Limits::default(), Duration::from_secs(10), now);
/// assert!(handshake.data_to_send().starts_with(b"GET / HTTP/1.1\r\n"));
/// let n = handshake.data_to_send().len();
/// handshake.advance(n);
/// let (_, response) = handshake.receive_data(answer.as_bytes()).unwrap();
/// let opened = handshake.finish(&response.unwrap(), &WebSocketConfig::default(), now).unwrap();
/// assert_eq!(opened.negotiated.subprotocol, None);
/// ```
#[derive(Debug)]
pub struct ClientHandshake {
    request: ClientRequest,
    /// Bytes of the request already written.
    sent: usize,
    head: HeadReader,
    deadline: Instant,
}

/// A client connection the handshake opened (see [`ClientHandshake::finish`]).
#[derive(Debug)]
#[non_exhaustive]
pub struct Opened {
    /// The connection, extensions and timers installed.
    pub connection: Connection,
    /// What the handshake negotiated.
    pub negotiated: Negotiated,
    /// Bytes that came after the response (the server's first frames).
    pub leftover: Vec<u8>,
}

impl ClientHandshake {
    /// A handshake sending `request`, whose response must be complete
    /// within `timeout` from `now`.
    pub fn new(
        request: ClientRequest,
        limits: Limits,
        timeout: Duration,
        now: Instant,
    ) -> ClientHandshake {
        ClientHandshake {
            request,
            sent: 0,
            head: HeadReader::new(limits),
            deadline: now + timeout,
        }
    }

    /// The request bytes not yet written.
    pub fn data_to_send(&self) -> &[u8] {
        &self.request.bytes()[self.sent..]
    }

    /// Marks `n` bytes of [`data_to_send`](ClientHandshake::data_to_send)
    /// as written.
    pub fn advance(&mut self, n: usize) {
        self.sent = (self.sent + n).min(self.request.bytes().len());
    }

    /// Space for the next bytes of the response.
    pub fn space(&mut self) -> &mut [u8] {
        self.head.space()
    }

    /// Takes in `n` bytes written into [`space`](ClientHandshake::space):
    /// the response head once complete (verify it with
    /// [`finish`](ClientHandshake::finish)).
    pub fn filled(&mut self, n: usize) -> Result<Option<Response>> {
        self.head
            .filled(n, parse_response)
            .map_err(response_head_error)
    }

    /// Copies in bytes read elsewhere (see [`HeadReader::receive_data`]).
    pub fn receive_data(&mut self, data: &[u8]) -> Result<(usize, Option<Response>)> {
        self.head
            .receive_data(data, parse_response)
            .map_err(response_head_error)
    }

    /// When the response must be complete.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Whether the response came too late.
    pub fn is_timed_out(&self, now: Instant) -> bool {
        now >= self.deadline
    }

    /// The bytes that came after a complete response head (for a refusal:
    /// the start of its body).
    pub fn take_leftover(&mut self) -> Vec<u8> {
        self.head.take_leftover()
    }

    /// Verifies `response` against the request (RFC 6455 §4.2.2: the
    /// status, `Upgrade`, `Connection`, `Sec-WebSocket-Accept`, the
    /// subprotocol and extensions) and opens the connection.
    pub fn finish(
        mut self,
        response: &Response,
        config: &WebSocketConfig,
        now: Instant,
    ) -> Result<Opened> {
        let negotiated = verify_response(response, &self.request)?;
        let connection = Connection::after_handshake(Role::Client, config, &negotiated, now);
        Ok(Opened {
            connection,
            negotiated,
            leftover: self.head.take_leftover(),
        })
    }
}

impl ReadsHead for ServerHandshake {
    type Head = Request;
    type Error = HeadError;
    fn space(&mut self) -> &mut [u8] {
        ServerHandshake::space(self)
    }
    fn filled(&mut self, n: usize) -> Result<Option<Request>, HeadError> {
        ServerHandshake::filled(self, n)
    }
}

impl ReadsHead for ClientHandshake {
    type Head = Response;
    type Error = Error;
    fn space(&mut self) -> &mut [u8] {
        ClientHandshake::space(self)
    }
    fn filled(&mut self, n: usize) -> Result<Option<Response>> {
        ClientHandshake::filled(self, n)
    }
}

/// A response head that could not be read is a failed handshake.
fn response_head_error(e: HeadError) -> Error {
    Error::Handshake(HandshakeError::Http(match e {
        HeadError::Parse(e) => e,
        HeadError::TooLarge => HttpError::HeadTooLarge,
    }))
}
