//! The session: lines in, the connection's life, the end of input, signals,
//! the exit status. Runs on the main thread; the client's own thread reads
//! and prints (see `printer`).

use crate::args::{Options, MAX_LINGER};
use crate::input::{Gate, Input};
use rfc6455::frame::OpCode;
use rfc6455::reconnect::{End, Handle, Outcome, Unsent};
use rfc6455::{CloseCode, Error, Message, Stream, Writer};
use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the main thread waits for.
pub enum Event {
    /// A line of input.
    Input(Input),
    /// The end of input (`failed`: a read error ended it).
    InputEnd { failed: bool },
    /// A connection opened; its writer, for `--send-file`.
    Connected(Writer<Stream>),
    /// A message arrived (for `--linger`).
    Received,
    /// The client ended.
    Finished(std::thread::Result<Outcome>),
    /// SIGINT or SIGTERM. Only signal handlers send it.
    #[cfg_attr(not(feature = "signals"), allow(dead_code))]
    Interrupted(i32),
}

/// How long Ctrl-C waits for the server to answer our close frame: long
/// enough for any live server, short enough for a user who wants out.
const INTERRUPT_WAIT: Duration = Duration::from_secs(2);

/// How long the end of input waits for the close handshake: the library
/// bounds it by its close timeout (5 s) already; this is a last resort.
const CLOSE_WAIT: Duration = Duration::from_secs(10);

pub struct Session<'a> {
    options: &'a Options,
    handle: Handle,
    inbox: Receiver<Event>,
    gate: Arc<Gate>,
    /// The signal a blocked send should give way to (0: none).
    signalled: Arc<AtomicI32>,
    /// The printer met a failure (`--save` could not write).
    failed: Arc<AtomicBool>,
    /// Sent once, on the first connection.
    send_file: Option<PathBuf>,
    input_failed: bool,
    said_closing: bool,
    /// A connection has opened (`Event::Connected`).
    connected_once: bool,
}

impl<'a> Session<'a> {
    pub fn new(
        options: &'a Options,
        handle: Handle,
        inbox: Receiver<Event>,
        gate: Arc<Gate>,
        signalled: Arc<AtomicI32>,
        failed: Arc<AtomicBool>,
    ) -> Session<'a> {
        Session {
            options,
            handle,
            inbox,
            gate,
            signalled,
            failed,
            send_file: options.send_file.clone(),
            input_failed: false,
            said_closing: false,
            connected_once: false,
        }
    }

    /// Runs until the client ends; the exit status.
    pub fn run(mut self) -> ExitCode {
        loop {
            match self.inbox.recv() {
                Ok(Event::Input(input)) => self.input(input),
                // With --count, the messages awaited decide the end.
                Ok(Event::InputEnd { failed }) => {
                    self.input_failed = failed;
                    if self.options.count.is_none() {
                        return self.end_of_input();
                    }
                }
                Ok(Event::Connected(writer)) => self.connected(&writer),
                Ok(Event::Received) => {}
                Ok(Event::Finished(outcome)) => return self.finished(outcome),
                Ok(Event::Interrupted(signal)) => return self.interrupted(signal),
                Err(_) => return ExitCode::FAILURE,
            }
        }
    }

    fn input(&mut self, input: Input) {
        match input {
            Input::Send(message) => self.send(message),
            Input::Close(code, reason) => {
                // In order, as the lines before it: once they went out on a
                // connection (before one exists there is nothing to close).
                while !self.handle.wait_connected(Duration::from_millis(100)) {
                    if self.signalled.load(Ordering::Acquire) != 0 || self.handle.is_stopped() {
                        break;
                    }
                }
                if let Err(e) = self.handle.close(code, &reason) {
                    eprintln!("wsclient: /close {code}: {e}");
                }
            }
        }
        self.gate.release();
    }

    /// Sends `message`, or queues it while disconnected. When the queue is
    /// full (or it is a ping, which is never queued), waits for a connection
    /// to take it (reading stops meanwhile, see `input::Gate`), unless a
    /// signal or the client's end comes first.
    fn send(&mut self, mut message: Message) {
        let ping = matches!(message, Message::Ping(_));
        loop {
            match self.handle.send(message) {
                Ok(_) => {
                    if ping && self.options.show_pings {
                        eprintln!("wsclient: ping sent");
                    }
                    return;
                }
                // Input keeps its order: a line waits for the queue to
                // drain, a ping for a connection, as the lines behind them.
                Err(Unsent::Full(m) | Unsent::NotConnected(m)) => {
                    let control = !m.is_data();
                    message = m;
                    if self.signalled.load(Ordering::Acquire) != 0 || self.handle.is_stopped() {
                        eprintln!("wsclient: not sent: the connection is gone");
                        return;
                    }
                    let slice = Duration::from_millis(100);
                    if control {
                        self.handle.wait_connected(slice);
                    } else {
                        self.handle.wait_flushed(slice);
                    }
                }
                Err(Unsent::Stopped(_)) => {
                    if !self.said_closing {
                        eprintln!("wsclient: closing: further input is not sent");
                        self.said_closing = true;
                    }
                    return;
                }
                Err(e) => {
                    eprintln!("wsclient: not sent: {e}");
                    return;
                }
            }
        }
    }

    fn connected(&mut self, writer: &Writer<Stream>) {
        self.connected_once = true;
        if let Some(path) = self.send_file.take() {
            send_file_over(writer, &path);
        }
    }

    /// End of input: what was typed goes out (with `--reconnect`, once a
    /// connection takes it), the replies are let in (`--linger`: a peer that
    /// gets our close may drop what it has not sent yet), then close 1000
    /// and wait (bounded) for the reply.
    fn end_of_input(mut self) -> ExitCode {
        // Without --reconnect the one connection is awaited (input that
        // ends at once still connects and closes, as `wsclient URL
        // </dev/null` always did); with it, only what is queued is.
        loop {
            let connected = self.connected_once || self.options.reconnect;
            if connected && self.handle.wait_flushed(Duration::ZERO) {
                break;
            }
            match self.inbox.recv_timeout(Duration::from_millis(100)) {
                Ok(Event::Finished(outcome)) => return self.finished(outcome),
                Ok(Event::Interrupted(signal)) => return self.interrupted(signal),
                Ok(Event::Connected(writer)) => self.connected(&writer),
                Ok(_) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return ExitCode::FAILURE,
            }
        }
        if let Some(code) = self.linger() {
            return code;
        }
        self.handle.stop();
        self.wait_finished(CLOSE_WAIT)
    }

    /// Waits until nothing has arrived for `--linger` (at most `MAX_LINGER`
    /// in all). The exit status if the client ended meanwhile.
    fn linger(&mut self) -> Option<ExitCode> {
        let quiet = self.options.linger;
        let deadline = Instant::now() + Duration::from_secs_f64(MAX_LINGER);
        while !quiet.is_zero() && Instant::now() < deadline {
            match self.inbox.recv_timeout(quiet) {
                Ok(Event::Finished(outcome)) => return Some(self.finished(outcome)),
                Ok(Event::Interrupted(signal)) => return Some(self.interrupted(signal)),
                Ok(Event::Connected(writer)) => self.connected(&writer),
                Ok(_) => {}
                Err(_) => break,
            }
        }
        None
    }

    /// Waits for the client to end after a close, at most `limit`.
    fn wait_finished(&self, limit: Duration) -> ExitCode {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.inbox.recv_timeout(left) {
                Ok(Event::Finished(outcome)) => return self.finished(outcome),
                Ok(Event::Interrupted(signal)) => return signal_exit(signal),
                Ok(_) => {}
                Err(_) => {
                    eprintln!("wsclient: no close reply from the server");
                    return ExitCode::FAILURE;
                }
            }
        }
    }

    /// After Ctrl-C (or SIGTERM): close with 1001 going away, as a browser
    /// does for a page the user leaves (1000 is for the end of input, the
    /// conversation's normal end), wait briefly for the server's reply, and
    /// exit with 128 + the signal number. A second signal exits at once
    /// (see `main::install_signal_handler`).
    fn interrupted(&self, signal: i32) -> ExitCode {
        let _ = self.handle.close(CloseCode::GOING_AWAY, "");
        let deadline = Instant::now() + INTERRUPT_WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.inbox.recv_timeout(left) {
                Ok(Event::Finished(_)) => break,
                Ok(_) => {}
                Err(_) => {
                    eprintln!("wsclient: no close reply from the server");
                    break;
                }
            }
        }
        signal_exit(signal)
    }

    /// The exit status for how the client ended.
    fn finished(&self, outcome: std::thread::Result<Outcome>) -> ExitCode {
        let Ok(outcome) = outcome else {
            eprintln!("wsclient: internal error (the reading thread panicked)");
            return ExitCode::FAILURE;
        };
        if !outcome.unsent.is_empty() {
            let n = outcome.unsent.len();
            let s = if n == 1 { "" } else { "s" };
            eprintln!("wsclient: {n} message{s} not sent: no connection took them");
        }
        let ok = match &outcome.end {
            End::Stopped { clean } => *clean,
            // --count: the connection ended before the messages awaited.
            End::Closed(_) if self.options.count.is_some() => false,
            End::Closed(ended) => {
                ended.error.is_none()
                    && ended.close.as_ref().is_some_and(|f| {
                        [
                            CloseCode::NORMAL,
                            CloseCode::GOING_AWAY,
                            CloseCode::NO_STATUS,
                        ]
                        .contains(&f.code)
                    })
            }
            // The printer said why.
            End::Failed(_) => false,
        };
        let failed = self.input_failed || self.failed.load(Ordering::Acquire);
        if ok && outcome.unsent.is_empty() && !failed {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    }
}

/// Sends the file at `path` as one binary message, streamed.
fn send_file_over(writer: &Writer<Stream>, path: &Path) {
    let sent = std::fs::File::open(path)
        .map_err(Error::Io)
        .and_then(|file| writer.send_stream(OpCode::Binary, io::BufReader::new(file), 64 << 10));
    match sent {
        Ok(n) => eprintln!("wsclient: sent {} ({n} bytes)", path.display()),
        Err(e) => eprintln!("wsclient: not sent: {}: {e}", path.display()),
    }
}

/// The shell's convention for "killed by signal N": 128 + N (130 for
/// Ctrl-C), so that `wsclient … && next` does not go on as if the whole
/// input had been delivered.
pub fn signal_exit(signal: i32) -> ExitCode {
    ExitCode::from(u8::try_from(128 + signal).unwrap_or(u8::MAX))
}
