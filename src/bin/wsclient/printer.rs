//! What arrives, printed: messages on stdout (escaped on a terminal, one
//! per line in a pipe), connection details on stderr, binary messages saved
//! with `--save`. The client's callbacks, on its reading thread.

use crate::connect::explain;
use crate::session::Event;
use rfc6455::escape;
use rfc6455::frame::OpCode;
use rfc6455::protocol::{MessageRef, Piece, Streaming};
use rfc6455::reconnect::{Disconnect, Ended, Handle, Handler, Next, Session};
use std::borrow::Cow;
use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;

/// How messages are written to stdout.
#[derive(Clone, Copy)]
pub struct Output {
    /// On a terminal: `< ` before each, control and bidi characters escaped.
    terminal: bool,
    /// In a pipe with `--null`: NUL after each, text as received.
    null: bool,
}

impl Output {
    pub fn for_stdout(null: bool) -> Output {
        Output {
            terminal: io::stdout().is_terminal(),
            null,
        }
    }

    /// Writes one received text message.
    pub fn text(&self, text: &str) {
        if self.terminal {
            // Marked, so that it stands apart from the typed lines the
            // terminal echoes (as `python -m websockets` does), and escaped:
            // a server must not drive the terminal (issue 23).
            self.write(format_args!("< {}\n", escape::for_display(text)));
        } else if self.null {
            self.write(format_args!("{text}\0"));
        } else {
            self.write(format_args!("{}\n", one_line(text)));
        }
    }

    /// Writes a line of our own making (a binary message's description).
    pub fn note(&self, line: &str) {
        let mark = if self.terminal { "< " } else { "" };
        let end = if self.null && !self.terminal {
            '\0'
        } else {
            '\n'
        };
        self.write(format_args!("{mark}{line}{end}"));
    }

    fn write(&self, what: std::fmt::Arguments<'_>) {
        let mut out = io::stdout().lock();
        let _ = out.write_fmt(what);
        let _ = out.flush();
    }
}

/// A text message as one line of a pipe: a line feed is written `\n` and a
/// carriage return `\r`, everything else as received (so JSON, which never
/// holds a raw line break, passes unchanged).
pub fn one_line(text: &str) -> Cow<'_, str> {
    if text.contains(['\n', '\r']) {
        Cow::Owned(text.replace('\n', "\\n").replace('\r', "\\r"))
    } else {
        Cow::Borrowed(text)
    }
}

/// `<binary N bytes: HEX…>`, the first 32 bytes in hex.
pub fn describe_binary(data: &[u8]) -> String {
    let shown: String = data.iter().take(32).map(|b| format!("{b:02x}")).collect();
    let more = if data.len() > 32 { "…" } else { "" };
    format!("<binary {} bytes: {shown}{more}>", data.len())
}

/// What the printer was told by the flags.
pub struct Settings {
    pub url: String,
    pub output: Output,
    pub reconnect: bool,
    pub verbose: bool,
    pub show_pings: bool,
    pub count: Option<u64>,
    pub save: Option<PathBuf>,
}

/// The client's callbacks.
pub struct Printer {
    settings: Settings,
    events: Sender<Event>,
    /// A connection is open: a signal closes it instead of exiting at once.
    open: Arc<AtomicBool>,
    /// Something failed that makes the run a failure (exit 1).
    failed: Arc<AtomicBool>,
    handle: Handle,
    /// Data messages received, on all connections.
    received: u64,
    saving: Option<Saving>,
}

impl Printer {
    pub fn new(
        settings: Settings,
        events: Sender<Event>,
        open: Arc<AtomicBool>,
        failed: Arc<AtomicBool>,
        handle: Handle,
    ) -> Printer {
        let saving = settings.save.clone().map(|dir| Saving {
            dir,
            count: 0,
            file: None,
            text: Vec::new(),
        });
        Printer {
            settings,
            events,
            open,
            failed,
            handle,
            received: 0,
            saving,
        }
    }

    /// One more data message: counted toward `--count`.
    fn received(&mut self, session: &Session<'_>) {
        self.received += 1;
        if self.settings.count == Some(self.received) {
            session.handle().stop();
        }
        let _ = self.events.send(Event::Received);
    }
}

impl Handler for Printer {
    fn on_open(&mut self, session: &Session<'_>) {
        let response = session.response();
        let headers = &response.headers;
        let mut details = String::new();
        if let Some(p) = headers.get("sec-websocket-protocol") {
            details.push_str(&format!(" (subprotocol {})", escape::for_display(p)));
        }
        if let Some(e) = headers.get("sec-websocket-extensions") {
            details.push_str(&format!(" (extensions {})", escape::for_display(e)));
        }
        // Before "connected" is printed, which a user (or a test) may take
        // as the cue to press Ctrl-C.
        self.open.store(true, Ordering::Release);
        eprintln!("wsclient: connected to {}{details}", self.settings.url);
        if self.settings.verbose {
            eprintln!(
                "wsclient: < HTTP/1.1 {} {}",
                response.status,
                escape::for_display(&response.reason)
            );
            for (name, value) in headers.iter() {
                eprintln!(
                    "wsclient: < {}: {}",
                    escape::for_display(name),
                    escape::for_display(value)
                );
            }
        }
        let _ = self.events.send(Event::Connected(session.writer().clone()));
    }

    fn on_message(&mut self, session: &Session<'_>, message: MessageRef<'_>) {
        // --count: what comes after the last one awaited (while the close
        // handshake runs) is not printed.
        if self.settings.count.is_some_and(|n| self.received >= n) {
            return;
        }
        match message {
            MessageRef::Text(text) => self.settings.output.text(text),
            MessageRef::Binary(data) => self.settings.output.note(&describe_binary(data)),
            _ => return,
        }
        self.received(session);
    }

    fn streaming(&self) -> Streaming {
        // Saving streams every data message to its file as it arrives.
        if self.saving.is_some() {
            Streaming::Always
        } else {
            Streaming::Never
        }
    }

    fn on_piece(&mut self, session: &Session<'_>, piece: Piece<'_>) {
        let Some(saving) = self.saving.as_mut() else {
            return;
        };
        let saved = match piece {
            Piece::Start(opcode) => saving.start(opcode),
            Piece::Data(bytes) => saving.data(bytes),
            Piece::End => match saving.end() {
                Ok(text) => {
                    if let Some(text) = text {
                        self.settings.output.text(&text);
                    }
                    self.received(session);
                    Ok(())
                }
                Err(e) => Err(e),
            },
            Piece::Message(_) => Ok(()),
        };
        if let Err(e) = saved {
            eprintln!("wsclient: --save: {e}; closing");
            self.failed.store(true, Ordering::Release);
            let _ = session
                .handle()
                .close(rfc6455::CloseCode::INTERNAL_ERROR, "");
        }
    }

    fn on_ping(&mut self, _session: &Session<'_>, payload: &[u8]) {
        if self.settings.show_pings {
            eprintln!("wsclient: ping received{}", shown_payload(payload));
        }
    }

    fn on_pong(&mut self, _session: &Session<'_>, payload: &[u8]) {
        if self.settings.show_pings {
            eprintln!("wsclient: pong received{}", shown_payload(payload));
        }
    }

    fn on_error(&mut self, error: &rfc6455::Error) {
        // A failed attempt is told with the plan in `retry`; once the client
        // is stopping (input ended while it was connecting) no plan follows,
        // so it is told here.
        if !self.open.load(Ordering::Acquire) && self.handle.is_stopped() {
            let url = &self.settings.url;
            eprintln!("wsclient: cannot connect to {url}: {}", explain(error));
        }
    }

    fn on_close(&mut self, ended: &Ended) {
        self.open.store(false, Ordering::Release);
        match (&ended.close, &ended.error) {
            (Some(frame), None) => eprintln!("wsclient: connection closed: {frame}"),
            (_, Some(e)) => eprintln!("wsclient: connection lost: {}", explain(e)),
            (None, None) => eprintln!("wsclient: connection closed (no close frame)"),
        }
        if let Some(n) = self.settings.count.filter(|n| self.received < *n) {
            eprintln!("wsclient: {} of the {n} messages arrived", self.received);
        }
    }

    fn retry(&mut self, why: Disconnect<'_>, attempt: u32, planned: Next) -> Next {
        let plan = if self.settings.reconnect {
            planned
        } else {
            Next::Stop
        };
        let url = &self.settings.url;
        match (why, plan) {
            (Disconnect::ConnectFailed(e), Next::Retry(wait)) => eprintln!(
                "wsclient: cannot connect to {url}: {}; retrying in {:.1}s",
                explain(e),
                wait.as_secs_f64()
            ),
            (Disconnect::ConnectFailed(e), Next::Stop) => {
                eprintln!("wsclient: cannot connect to {url}: {}", explain(e))
            }
            (Disconnect::Ended(_), Next::Retry(wait)) => {
                eprintln!("wsclient: reconnecting in {:.1}s", wait.as_secs_f64())
            }
            (Disconnect::Ended(ended), Next::Stop) if self.settings.reconnect => {
                let why = match &ended.close {
                    Some(frame) => format!("the server closed with {}", frame.code),
                    None => "the connection failed".to_owned(),
                };
                eprintln!("wsclient: not reconnecting: {why}");
            }
            (Disconnect::Ended(_), Next::Stop) => {}
        }
        if self.settings.verbose && self.settings.reconnect {
            eprintln!("wsclient: (attempt {attempt} since the backoff was reset)");
        }
        plan
    }
}

/// `: "payload"` for a non-empty control payload, escaped.
fn shown_payload(payload: &[u8]) -> String {
    if payload.is_empty() {
        return String::new();
    }
    let text = String::from_utf8_lossy(payload);
    format!(": {}", escape::for_display(&text))
}

/// Where `--save` writes a binary message as it arrives.
struct Saving {
    dir: PathBuf,
    count: u64,
    file: Option<(PathBuf, io::BufWriter<std::fs::File>, u64)>,
    /// A text message arriving in pieces (printed whole at its end).
    text: Vec<u8>,
}

impl Saving {
    fn start(&mut self, opcode: OpCode) -> io::Result<()> {
        self.text.clear();
        if opcode == OpCode::Binary {
            self.count += 1;
            let path = self.dir.join(format!("message-{}.bin", self.count));
            let file = io::BufWriter::new(std::fs::File::create(&path)?);
            self.file = Some((path, file, 0));
        }
        Ok(())
    }

    fn data(&mut self, bytes: &[u8]) -> io::Result<()> {
        match &mut self.file {
            Some((_, file, len)) => {
                *len += bytes.len() as u64;
                file.write_all(bytes)
            }
            None => {
                self.text.extend_from_slice(bytes);
                Ok(())
            }
        }
    }

    /// Ends the message: the text it was, if it was text.
    fn end(&mut self) -> io::Result<Option<String>> {
        match self.file.take() {
            Some((path, mut file, len)) => {
                file.flush()?;
                eprintln!("wsclient: saved {} ({len} bytes)", path.display());
                Ok(None)
            }
            None => Ok(Some(
                String::from_utf8_lossy(&std::mem::take(&mut self.text)).into_owned(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_multi_line_message_is_one_line_in_a_pipe() {
        assert_eq!(one_line("a\nb\r\nc"), r"a\nb\r\nc");
        assert_eq!(one_line(r#"{"k": "v\n"}"#), r#"{"k": "v\n"}"#);
        assert!(matches!(one_line("plain"), Cow::Borrowed("plain")));
    }

    #[test]
    fn binary_is_described_by_size_and_hex() {
        assert_eq!(describe_binary(&[0xde, 0xad]), "<binary 2 bytes: dead>");
        assert!(describe_binary(&[0; 40]).ends_with("…>"));
    }
}
